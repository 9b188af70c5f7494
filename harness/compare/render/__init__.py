"""Rendering ``Comparison`` and ``CheckResult``: one result, every surface.

- ``terminal``: rich tables for ``harness compare`` / ``harness check``;
- ``markdown``: a PR comment (``--markdown``) and the GitHub step summary;
- ``junit``: JUnit XML, one testcase per gate (``--junit FILE``);
- ``github``: ``::error::``/``::warning::`` lines and the ``$GITHUB_STEP_SUMMARY`` file;
- ``html``: the comparison and check sections of the HTML report (``harness report``).

Nothing here computes a number: every figure comes from the result object, formatted by
``harness.numbers``, so all surfaces agree. The HTML report draws the same objects
(``html``, with the plots and page of ``harness.report``).
"""

# A mean shown with its interval: significant digits, the same on every surface (its
# interval's ends have 3, harness.numbers.ci).
MEAN_DIGITS = 3
