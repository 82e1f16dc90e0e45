"""What several of the explorer's features share: the spans' vocabulary and what a
failed request is (`spans`), SQL fragments (`sql`), time ranges (`time`) and the routes'
helpers and answer envelopes (`responses`). It imports no feature."""
