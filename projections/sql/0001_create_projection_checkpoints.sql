-- Where each projection has got to in each topic partition. A writer advances its checkpoint
-- in the same transaction as the rows it writes, so a crash never applies a batch twice or
-- skips one (DESIGN.md §7).
CREATE TABLE projection_checkpoints (
    projection  text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL CHECK (partition >= 0),
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

COMMENT ON TABLE projection_checkpoints IS
    'Per projection and topic partition, the offset of the next record to apply.';
