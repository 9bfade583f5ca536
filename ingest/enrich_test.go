package ingest

import (
	"net/netip"
	"testing"
)

func TestDevice(t *testing.T) {
	tests := map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36":        DeviceDesktop,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15": DeviceDesktop,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148":                          DeviceMobile,
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36":                      DeviceMobile,
		"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/120.0 Safari/537.36":                             DeviceTablet,
		"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148":                                   DeviceTablet,
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)":                                           DeviceBot,
		"curl/8.5.0": DeviceBot,
		"":           DeviceOther,
		"Nokia3310":  DeviceOther,
	}
	for ua, want := range tests {
		if got := Device(ua); got != want {
			t.Errorf("Device(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestCountry(t *testing.T) {
	for ip, want := range map[string]string{"8.8.8.8": "US", "127.0.0.1": "", "10.1.2.3": "", "::1": ""} {
		if got := Country(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Country(%s) = %q, want %q", ip, got, want)
		}
	}
	if Country(netip.Addr{}) != "" {
		t.Error("invalid address has a country")
	}
}
