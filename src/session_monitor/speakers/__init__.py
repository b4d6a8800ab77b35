"""speakers"""
