"""power model, site cap, renewable supply, carbon intensity"""
