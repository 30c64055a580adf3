// Owns the check that the README's configuration table equals the code's ENV_VARS.
use svc_client::ENV_VARS;

#[test]
fn readme_env_table_matches_env_vars() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("| Variable | Default | Description |")
        .expect("README has the env table");
    let rows: Vec<(String, String, String)> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect();
            assert_eq!(cells.len(), 3, "row {l:?}");
            (cells[0].clone(), cells[1].clone(), cells[2].clone())
        })
        .collect();
    let code: Vec<(String, String, String)> = ENV_VARS
        .iter()
        .map(|v| {
            (
                v.name.to_owned(),
                v.default.to_owned(),
                v.description.to_owned(),
            )
        })
        .collect();
    assert_eq!(rows, code);
}
