package errcode

import "encoding/json"

// Body is the wire form of an Error, as the local API sends it inside
// {"error": ...} and inside failed events. The cause is not sent.
type Body struct {
	Code       Code   `json:"code"`
	Message    string `json:"message"`
	Phase      Phase  `json:"phase,omitempty"`
	AvatarID   string `json:"avatarId,omitempty"`
	Transient  bool   `json:"transient"`
	Recovery   string `json:"recovery,omitempty"`
	Reason     string `json:"reason,omitempty"`
	HTTPStatus int    `json:"httpStatus,omitempty"`
	ServerCode string `json:"serverCode,omitempty"`
	Asset      string `json:"asset,omitempty"`
	// Hint is the next step in assetd's own terms (a command to run, a
	// setting to change), chosen by the reason and filled with the
	// daemon's configuration; Recovery stays the SDK table's text.
	Hint string `json:"hint,omitempty"`
}

// Envelope is the body of every non-2xx answer of the local API.
type Envelope struct {
	Error Body `json:"error"`
}

// Body returns the wire form of e.
func (e *Error) Body() Body {
	return Body{
		Code:       e.Code,
		Message:    e.Message,
		Phase:      e.Phase,
		AvatarID:   e.AvatarID,
		Transient:  e.Transient,
		Recovery:   e.Code.Recovery(),
		Reason:     e.Reason,
		HTTPStatus: e.HTTPStatus,
		ServerCode: e.ServerCode,
		Asset:      e.Asset,
		Hint:       e.Hint,
	}
}

// Err turns a wire body back into an *Error, for clients of the API.
func (b Body) Err() *Error {
	return &Error{
		Code:       b.Code,
		Message:    b.Message,
		Phase:      b.Phase,
		AvatarID:   b.AvatarID,
		Transient:  b.Transient,
		Reason:     b.Reason,
		HTTPStatus: b.HTTPStatus,
		ServerCode: b.ServerCode,
		Asset:      b.Asset,
		Hint:       b.Hint,
	}
}

func (e *Error) MarshalJSON() ([]byte, error) { return json.Marshal(e.Body()) }

func (e *Error) UnmarshalJSON(data []byte) error {
	var b Body
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	*e = *b.Err()
	return nil
}
