"""`agent-service restore`: put a backup back into a new database and prove it is whole.

Every command prints one JSON document with what it did and how long each step took, so a
restore drill's figures are the recovery time objective measured, not guessed.
"""
