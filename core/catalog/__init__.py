"""The model catalogue: the bundled and the user's models (library), and sharing one as a zip (model_share)."""
