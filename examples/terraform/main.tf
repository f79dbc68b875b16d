# Example root module: the billing database's password, certified for PCI DSS
# and stored in Vault. Run with VAULT_ADDR/VAULT_TOKEN and PASSGENI_URL/
# PASSGENI_API_KEY in the environment (see README.md in this folder).

module "billing_db_password" {
  source     = "./modules/certified-db-password"
  vault_path = "secret/prod/billing-db"
  preset     = "pci-dss"
  keeper     = "2026-11-22" # change to rotate
}

# The application reads the password from Vault at run time (Vault agent,
# the vault provider's ephemeral resources...), never from Terraform.

output "billing_db_password_certificate" {
  value = module.billing_db_password.cert_url
}
