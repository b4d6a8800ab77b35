"""rupture"""
