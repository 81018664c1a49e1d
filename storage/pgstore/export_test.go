package pgstore

// DataTables lets the external tests check the list against the schema.
func DataTables() []string { return dataTables }

// SchemaTables lets them check that the other tables are the schema's.
func SchemaTables() []string { return schemaTables }
