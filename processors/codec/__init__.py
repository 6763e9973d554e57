"""Encoding of the contract: Avro schemas generated from the models, framing on Kafka, the JSON
form. An adapter (fastavro lives here); the rule core never imports it."""
