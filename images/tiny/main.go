// Command tiny is the smallest MCP server mcpd's scale benchmark and tests run by the
// hundred: newline-delimited JSON-RPC 2.0 on stdin/stdout (the MCP stdio transport)
// answering initialize, ping, tools/list and tools/call of one `echo` tool, and
// ignoring notifications. It uses the standard library only, so it builds offline
// into a static binary of about 2 MB whose process needs about 1-2 MB of memory: an
// MCP SDK would pull in JSON-schema validation and more, which a fixture meant to be
// started 500 times over does not need.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

const protocolVersion = "2025-06-18"

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type textContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

var echoTool = map[string]any{
	"name":        "echo",
	"description": "Returns its message.",
	"inputSchema": map[string]any{
		"type":       "object",
		"properties": map[string]any{"message": map[string]any{"type": "string"}},
		"required":   []string{"message"},
	},
}

// handle returns the result or the error of one request.
func handle(req request) (any, *rpcError) {
	switch req.Method {
	case "initialize":
		version := protocolVersion
		var params struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		// The client's version is echoed back: this server speaks the subset every version shares.
		if json.Unmarshal(req.Params, &params) == nil && params.ProtocolVersion != "" {
			version = params.ProtocolVersion
		}
		return map[string]any{
			"protocolVersion": version,
			"capabilities":    map[string]any{"tools": map[string]any{}},
			"serverInfo":      map[string]any{"name": "mcpd-tiny", "version": "1.0.0"},
		}, nil
	case "ping":
		return map[string]any{}, nil
	case "tools/list":
		return map[string]any{"tools": []any{echoTool}}, nil
	case "tools/call":
		var params struct {
			Name      string `json:"name"`
			Arguments struct {
				Message *string `json:"message"`
			} `json:"arguments"`
		}
		if err := json.Unmarshal(req.Params, &params); err != nil {
			return nil, &rpcError{Code: -32602, Message: "invalid params: " + err.Error()}
		}
		if params.Name != "echo" {
			return nil, &rpcError{Code: -32602, Message: fmt.Sprintf("unknown tool %q (this server has: echo)", params.Name)}
		}
		if params.Arguments.Message == nil {
			return map[string]any{"content": []textContent{{"text", "echo needs a string argument \"message\""}}, "isError": true}, nil
		}
		return map[string]any{"content": []textContent{{"text", *params.Arguments.Message}}}, nil
	default:
		return nil, &rpcError{Code: -32601, Message: "method not found: " + req.Method}
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64*1024), 16*1024*1024)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		line := in.Bytes()
		if len(line) == 0 {
			continue
		}
		var req request
		if err := json.Unmarshal(line, &req); err != nil {
			_ = enc.Encode(response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: -32700, Message: "parse error: " + err.Error()}})
			_ = out.Flush()
			continue
		}
		// A notification (no id) gets no answer.
		if len(req.ID) == 0 || string(req.ID) == "null" {
			continue
		}
		result, rpcErr := handle(req)
		_ = enc.Encode(response{JSONRPC: "2.0", ID: req.ID, Result: result, Error: rpcErr})
		_ = out.Flush()
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "tiny: reading stdin:", err)
		os.Exit(1)
	}
}
