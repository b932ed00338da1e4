"""twin (simulated fleet) and slurm: each applies decisions and reports job events"""
