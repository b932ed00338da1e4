"""the event loop with a virtual clock, failure injection, metrics, reports with plots"""
