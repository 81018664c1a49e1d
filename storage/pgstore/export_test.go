package pgstore

// DataTables lets the external tests check the list against the schema.
func DataTables() []string { return dataTables }
