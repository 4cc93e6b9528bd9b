"""Portable models: a succeeded model exported as one JSON document and imported on
another deployment, where it predicts identically."""
