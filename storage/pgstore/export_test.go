package pgstore

import "github.com/nudgebot/nudgebot/nudges"

// DataTables lets the external tests check the list against the schema.
func DataTables() []string { return dataTables }

// SchemaTables lets them check that the other tables are the schema's.
func SchemaTables() []string { return schemaTables }

// SwapDelivery lets the tests see whether a write from a held delivery
// took its one-statement path.
func (s *Store) SwapDelivery(old, d nudges.Delivery) (bool, error) { return s.swapDelivery(old, d) }
