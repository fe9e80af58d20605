"""Layer zoo II (initializers, recurrent dropout, Bidirectional) tests. Keras 3 on the
torch backend is a reference here: the backend is chosen when keras is first imported,
so it is set before anything else can import it."""
import os

os.environ["KERAS_BACKEND"] = "torch"
