package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SettingsTable holds the service's own settings (the server token's
// hash, among them), one row a key.
const SettingsTable = "_stripeline_service_settings"

const settingsDDL = `CREATE TABLE IF NOT EXISTS ` + SettingsTable + ` (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
)`

// Setting returns a setting of the control store ("" when unset).
func (s *Service) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.st.queryRow(ctx, `SELECT value FROM `+SettingsTable+` WHERE name = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s from the control store: %w", key, err)
	}
	return v, nil
}

// SetSetting stores a setting of the control store, replacing its value.
func (s *Service) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.st.exec(ctx, `INSERT INTO `+SettingsTable+` (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("store setting %s in the control store: %w", key, err)
	}
	return nil
}
