"""Routers that live in their own modules (included by ``aicc.api.app.create_app``)."""
