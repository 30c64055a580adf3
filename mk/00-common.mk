# Shared pieces: system packages and the checked-in generated contracts.
DEPS_TARGETS += deps-system
LINT_TARGETS += lint-contracts

.PHONY: deps-system lint-contracts
deps-system:
	@scripts/deps-system

lint-contracts: ## generated catalog, pricing and ring vectors match their generators
	@python3 services/catalog/generate.py --check
	@python3 services/contracts/gen_pricing_vectors.py --check
	@python3 services/contracts/gen_ring_vectors.py --check
	@echo "contracts: catalog, pricing and ring vectors are fresh"
