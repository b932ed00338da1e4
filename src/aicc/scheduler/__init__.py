"""the pure policy core: fair-share tree, grant pacing, ordering, placement, backfill, preemption, power cap"""
