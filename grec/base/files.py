"""The names of the files grec's folders and checkpoints hold, in one place.

A stage folder is recognised by its ``settings.json`` (the flags that made it); a training
checkpoint by ``training_state.json`` (how it was trained), beside the SID map it generates
(``sid_map.json``), the records' settings it was trained on (``records.json``) and, for a
``train-task`` run, ``task.json``. docs/formats.md describes each.
"""

SETTINGS = "settings.json"
SID_MAP = "sid_map.json"
TRAINING_STATE = "training_state.json"
RECORDS_SETTINGS = "records.json"
TASK = "task.json"
