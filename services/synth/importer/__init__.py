"""`univr data import`: external datasets (SPEC Tables 6–7) brought into the store and the
database as pairs of their task type, tagged with their dataset. ``readers`` turns each source
format into records, ``presets`` names the datasets' real fields and their Neg/BS, ``sides`` turns
a record's fields into pair sides (media stored under ``imports/<dataset>/``), ``run`` drives it."""
