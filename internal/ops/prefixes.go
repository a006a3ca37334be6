package ops

import (
	"fmt"
	"strings"
)

// idPrefixes maps the prefix of a Stripe object id to the stream whose
// endpoint retrieves it. Longer prefixes are matched first, so "price_"
// wins over "pi_" and "sub_sched_" over "sub_".
var idPrefixes = map[string]string{
	"acct_":      "accounts",
	"bpc_":       "billing_portal_configurations",
	"ch_":        "charges",
	"py_":        "charges",
	"cn_":        "credit_notes",
	"cs_":        "checkout_sessions",
	"cus_":       "customers",
	"di_":        "disputes",
	"dp_":        "disputes",
	"du_":        "disputes",
	"evt_":       "events",
	"file_":      "files",
	"link_":      "file_links",
	"fee_":       "application_fees",
	"ii_":        "invoiceitems",
	"in_":        "invoices",
	"iauth_":     "issuing_authorizations",
	"ic_":        "issuing_cards",
	"ich_":       "issuing_cardholders",
	"idp_":       "issuing_disputes",
	"ipi_":       "issuing_transactions",
	"mtr_":       "billing_meters",
	"pi_":        "payment_intents",
	"plink_":     "payment_links",
	"pm_":        "payment_methods",
	"po_":        "payouts",
	"price_":     "prices",
	"prod_":      "products",
	"promo_":     "promotion_codes",
	"qt_":        "quotes",
	"re_":        "refunds",
	"pyr_":       "refunds",
	"rsl_":       "radar_value_lists",
	"seti_":      "setup_intents",
	"shr_":       "shipping_rates",
	"si_":        "subscriptions_items",
	"sub_":       "subscriptions",
	"sub_sched_": "subscription_schedules",
	"txi_":       "tax_ids",
	"txr_":       "tax_rates",
	"tr_":        "transfers",
	"tu_":        "topups",
	"txn_":       "balance_transactions",
	"we_":        "webhook_endpoints",
	"fa_":        "treasury_financial_accounts",
	"tmr_":       "terminal_readers",
	"tml_":       "terminal_locations",
	"tmc_":       "terminal_configurations",
	"clock_":     "test_helpers_test_clocks",
}

// StreamForID returns the stream an object id belongs to, from its prefix
// ("cus_…" → customers). Ids without a known prefix (coupons and plans take
// any id) need the stream named: `get STREAM ID`.
func StreamForID(id string) (string, error) {
	var best string
	for p := range idPrefixes {
		if strings.HasPrefix(id, p) && len(p) > len(best) {
			best = p
		}
	}
	if best == "" || len(id) == len(best) {
		return "", fmt.Errorf("cannot tell the stream of %q from its prefix: name it, e.g. `stripeline get coupons %s` (known prefixes: %s)", id, id, knownPrefixes())
	}
	return idPrefixes[best], nil
}

func knownPrefixes() string {
	return "cus_ in_ ch_ pi_ sub_ prod_ price_ re_ po_ txn_ ii_ cs_ pm_ seti_ …"
}
