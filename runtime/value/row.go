package value

// Row is one record: its values in schema order.
type Row []Value
