"""job spec and life cycle; trace readers (Philly, Helios, Alibaba PAI, native Parquet); synthetic sector workloads"""
