"""Everything that turns a trained method into numbers: datasets, metrics, protocols, records."""
