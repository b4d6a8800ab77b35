"""prosody"""
