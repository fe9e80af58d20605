"""Reading and writing arrays safely: atomic writes, no pickles."""
