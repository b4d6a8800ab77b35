"""clinician"""
