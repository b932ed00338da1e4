"""Job spec and life cycle (``jobs``); trace readers for Philly, Helios, Alibaba GPU 2023 and
any CSV/Parquet by column mapping (``readers``); the synthetic sector workload (``synthetic``)."""
