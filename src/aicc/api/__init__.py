"""FastAPI routers, auth, schemas (pydantic)"""
