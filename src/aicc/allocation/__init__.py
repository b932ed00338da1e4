"""calls, applications, reviews, grants, sector plans"""
