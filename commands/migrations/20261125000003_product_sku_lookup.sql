-- Finds the product that introduced a SKU straight from the event store (see
-- commands/src/catalog.rs): product and variant SKUs share one namespace.
CREATE INDEX IF NOT EXISTS events_product_created_sku
    ON events ((payload -> 'ProductCreated' ->> 'sku'))
    WHERE aggregate_type = 'product' AND event_type = 'ProductCreated';
CREATE INDEX IF NOT EXISTS events_variant_added_sku
    ON events ((payload -> 'VariantAdded' ->> 'sku'))
    WHERE aggregate_type = 'product' AND event_type = 'VariantAdded';
