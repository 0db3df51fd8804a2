"""The web app: ask with streamed answers, watch at the cited second, annotate runs.

``create_app(settings, token=...)`` builds the FastAPI application;
``serve(settings, host, port, token)`` runs it with uvicorn.
"""
