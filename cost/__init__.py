"""`make cost`: what a stack costs a month, from the program itself (see stack_cost.py)."""
