//! The demo catalog `grocery dev` starts with: ten everyday products across
//! fruit, vegetables, dairy, bakery and pantry, with valid (made-up) UPCs.

use crate::products::NewProduct;

struct DemoProduct {
    sku: &'static str,
    name: &'static str,
    description: &'static str,
    category: &'static str,
    upc: &'static str,
    unit: &'static str,
}

const CATALOG: [DemoProduct; 10] = [
    DemoProduct {
        sku: "APPLE",
        name: "Gala Apples",
        description: "Crisp, sweet Gala apples, loose. Great for snacking and lunch boxes.",
        category: "fruit",
        upc: "081234001018",
        unit: "each",
    },
    DemoProduct {
        sku: "BANANA",
        name: "Bananas",
        description: "Fairtrade Cavendish bananas, sold by the bunch of about six.",
        category: "fruit",
        upc: "081234001025",
        unit: "bunch",
    },
    DemoProduct {
        sku: "MILK",
        name: "Whole Milk 1 L",
        description: "Pasteurised whole milk, 3.5% fat, from local farms. Keep refrigerated.",
        category: "dairy",
        upc: "081234002015",
        unit: "1 L",
    },
    DemoProduct {
        sku: "EGGS",
        name: "Free-Range Eggs (12)",
        description: "A dozen large free-range eggs. Keep refrigerated.",
        category: "dairy",
        upc: "081234002022",
        unit: "12 pack",
    },
    DemoProduct {
        sku: "BREAD",
        name: "Sourdough Loaf",
        description: "Slow-fermented white sourdough with a crackling crust, baked this morning.",
        category: "bakery",
        upc: "081234003012",
        unit: "800 g",
    },
    DemoProduct {
        sku: "CHEESE",
        name: "Aged Cheddar 200 g",
        description: "Mature cheddar aged for 12 months; sharp and crumbly.",
        category: "dairy",
        upc: "2001234004015",
        unit: "200 g",
    },
    DemoProduct {
        sku: "YOGURT",
        name: "Greek Yogurt 500 g",
        description: "Thick strained plain yogurt, 10% fat, with live cultures.",
        category: "dairy",
        upc: "2001234004022",
        unit: "500 g",
    },
    DemoProduct {
        sku: "TOMATO",
        name: "Vine Tomatoes",
        description: "Ripe red tomatoes on the vine, sold per 500 g.",
        category: "vegetables",
        upc: "081234005016",
        unit: "500 g",
    },
    DemoProduct {
        sku: "CARROT",
        name: "Carrots 1 kg",
        description: "Washed carrots, sweet and crunchy, in a 1 kg bag.",
        category: "vegetables",
        upc: "081234005023",
        unit: "1 kg",
    },
    DemoProduct {
        sku: "COFFEE",
        name: "Ground Coffee 250 g",
        description: "Medium-roast arabica, ground for filter and French press.",
        category: "pantry",
        upc: "081234006013",
        unit: "250 g",
    },
];

/// The demo products, active and ready to be stocked.
pub fn catalog() -> impl Iterator<Item = NewProduct> {
    CATALOG.iter().map(|p| NewProduct {
        sku: p.sku.into(),
        name: p.name.into(),
        description: Some(p.description.into()),
        upc: Some(p.upc.into()),
        image_urls: vec![format!(
            "https://images.example.com/grocery/{}.jpg",
            p.sku.to_lowercase()
        )],
        category: Some(p.category.into()),
        active: true,
        metadata: Some(serde_json::json!({ "unit": p.unit, "demo": true })),
    })
}
