"""Former home of the train-interest trainer, kept only while interest/tune.py imports
`validation_split` from here: the trainer is now interest/trainer.py and the validation split
interest/validation.py. Delete this module once tune.py imports from interest/validation.py.
"""

from recsys_db.interest.validation import validation_split

__all__ = ["validation_split"]
