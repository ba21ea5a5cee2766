"""SymPy derivations backing smile_ref (pure functions returning SymPy expressions and lambdified numeric versions).

One module per derivation; each is documented in docs/derivations/<name>.md.
"""
