// Package argocd runs the Argo CD health check of StreamQuery (health.lua)
// in the Lua interpreter Argo CD embeds, for the check's tests and for the
// end-to-end suite, which judges it on the objects a real cluster produced.
package argocd

import (
	_ "embed"
	"encoding/json"
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// Script is health.lua.
//
//go:embed health.lua
var Script string

// Health runs the health check on an object, as its JSON, and returns the
// status and message it gives.
func Health(object []byte) (status, message string, err error) {
	var obj map[string]any
	if err := json.Unmarshal(object, &obj); err != nil {
		return "", "", err
	}
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(Script); err != nil {
		return "", "", fmt.Errorf("health.lua: %w", err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("health.lua returned %v", L.Get(-1))
	}
	return hs.RawGetString("status").String(), hs.RawGetString("message").String(), nil
}

// toLua converts a JSON-decoded value to a Lua value, as Argo CD does.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	}
	return lua.LNil
}
