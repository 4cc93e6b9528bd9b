"""The model registry: registered names with numbered versions, and their aliases."""
