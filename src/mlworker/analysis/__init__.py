"""Analysis jobs on whole datasets: segmentation, contact-policy analysis, content analysis.

Plain libraries over numpy, pandas, scikit-learn and statsmodels: each analysis takes a pandas
frame and a frozen configuration and returns a frozen result whose ``to_dict()`` is the job's
camelCase JSON answer. Progress is reported through a ``(fraction, message)`` callback.
"""
