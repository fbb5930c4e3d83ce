"""Training, tuning and evaluation of tabular models (scikit-learn, XGBoost, LightGBM).

Plain library code: data in, frozen results out, progress through a callback.
"""
