"""the portal: templates and static files"""
