"""A simulated crowd: oracles that answer triplet questions, and annotators that use the API.

`oracles` is plain Python over item ids and needs no server. `crowd` drives the HTTP API the
way the annotator page does. `accounts` creates the simulated annotators' users and tokens.
"""
