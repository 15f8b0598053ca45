"""asaql: Azure Stream Analytics queries, locally, on Apache Arrow."""
