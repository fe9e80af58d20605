"""Pictures: the graph of a spec (DOT, Mermaid, or an image via Graphviz) and training
curves (matplotlib, imported only when a curve is drawn)."""
