"""The compiled graph: symbolic tensors, nodes, models and the weights they share."""
