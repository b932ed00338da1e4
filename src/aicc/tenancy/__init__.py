"""sectors, organizations, projects, members, roles"""
