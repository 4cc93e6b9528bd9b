"""API keys, tenants and the caller's identity.

``service.auth.principal`` (who the caller is) imports nothing of the service, so any layer
and any middleware can read it; the key store and the middleware live beside it.
"""
