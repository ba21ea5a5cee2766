"""Validation studies of smile_ref: command-line scripts that run the package against theory, the SMILE
authors' code, BlackJAX and other methods, and write results under ``validation/results``.

Each script is a module of this package, run from the repository root as::

    python -m validation.<script> [options]        # e.g. python -m validation.analytical_bias --quick

``python -m`` puts the current folder on ``sys.path``, so ``validation`` and ``smile_ref`` both import from
the checkout (smile_ref also from an installed or editable copy).  The scripts import ``smile_ref`` and
third-party packages; a script split over several files imports its parts as ``validation.<part>``
(``validation._crosscheck_mile``, ``validation._crosscheck_sgmcmc``).  The one addition to ``sys.path``
is the SMILE authors' own source tree for the cross-checks against their code
(:func:`validation._authors_source.add_authors_source`); nothing of that tree is vendored here.
"""
