package manifest

import (
	"context"
	"strings"
)

// Names looks up the domain and relative path of a few fileIDs, for naming
// examples in findings as "domain/relativePath". IDs not in the index are
// left out of the result. It is meant for tens of IDs, not for a scan.
func (db *DB) Names(ctx context.Context, ids map[string]bool) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(ids))
	for id := range ids {
		args = append(args, id)
	}
	q := "SELECT fileID, domain, relativePath FROM Files WHERE fileID IN (?" + strings.Repeat(",?", len(args)-1) + ")"
	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, domain, path string
		if err := rows.Scan(&id, &domain, &path); err != nil {
			continue // a row of odd types names nothing
		}
		out[id] = domain + "/" + path
	}
	return out, rows.Err()
}
